from setuptools import find_packages, setup

PACKAGE = "bms_can"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["dbc/*.dbc"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "emulator = bms_can.emulator:main",
            "limits_tx = bms_can.limits_node:main",
        ],
        # python-can finds interfaces here: can.Bus(interface="unix", channel=DIRECTORY).
        "can.interface": ["unix = bms_can.unix_bus:UnixSocketBus"],
        "bms_slave.afe_backends": ["can = bms_can.afe_driver:make_afe"],
        "bms_slave.pack_sensor_backends": ["can = bms_can.pack_sensor_driver:make_sensor"],
        "bms_master.contactor_backends": ["can = bms_can.contactor_driver:make_contactors"],
    },
)
