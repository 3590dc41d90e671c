from setuptools import find_packages, setup

PACKAGE = "bms_master"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["data/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "master = bms_master.master_node:main",
            "contactor = bms_master.contactor_node:main",
        ],
        # Contactor drivers: factory(node) -> ContactorBackend (docs/master.md, Contactor hardware).
        "bms_master.contactor_backends": ["sim = bms_master.contactor_node:SimulatedContactors"],
    },
)
