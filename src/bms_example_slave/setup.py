from setuptools import find_packages, setup

PACKAGE = "bms_example_slave"

setup(
    name=PACKAGE,
    version="1.0.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    license="Apache-2.0",
    entry_points={"console_scripts": ["slave = bms_example_slave.slave_node:main"]},
)
