from setuptools import find_packages, setup

PACKAGE = "bms_bridge"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["schema.sql"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "cloud_bridge = bms_bridge.bridge_node:main",
            "cloud_sink = bms_bridge.sink:main",
            "cloud_servers = bms_bridge.servers:main",
        ],
    },
)
