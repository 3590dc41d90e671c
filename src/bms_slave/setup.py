from setuptools import find_packages, setup

PACKAGE = "bms_slave"

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
    entry_points={"console_scripts": [
        "sim_host = bms_slave.sim_host:main",
        "board = bms_slave.board_node:main",
    ]},
)
