from setuptools import find_packages, setup

PACKAGE = "bms_tools"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["data/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        # Launch files find executables in lib/<package>; the `bms` console script stays in bin/.
        (f"lib/{PACKAGE}", ["scripts/recorder", "scripts/player"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    license="Apache-2.0",
    entry_points={
        "console_scripts": ["bms = bms_tools.cli:main"],
        # lib/bms_tools/recorder is a script; this names its module for composed launches.
        "bms_composable": ["recorder = bms_tools.bags.recorder_node"],
    },
)
