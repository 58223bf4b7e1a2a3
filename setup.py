"""ament_python package that is also pip-installable (`pip install -e .`)."""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "robot_rewards"
HERE = Path(__file__).parent


def data_tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing every file under `folder` to share/robot_rewards/<folder>."""
    entries: dict[str, list[str]] = {}
    for path in sorted((HERE / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(HERE)
            entries.setdefault(f"share/{PACKAGE}/{rel.parent}", []).append(str(rel))
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    # interface_definitions links to robot_rewards_interfaces/: the same .msg/.srv/.action files,
    # registered with rosbags for bags and tests without ROS (robot_rewards.ros.interfaces)
    package_data={PACKAGE: ["conf/*.yaml", "ros/interface_definitions/msg/*.msg",
                            "ros/interface_definitions/srv/*.srv", "ros/interface_definitions/action/*.action"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *data_tree("launch"),
        *data_tree("config"),
        *data_tree("sim"),
        *data_tree("calibration"),
        *data_tree("checkpoints"),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24,<3",
        "torch>=2.1",
        "torchvision",
        "open_clip_torch>=2.24",
        "pybullet>=3.2.5",
        "hydra-core>=1.3,<1.4",
        "opencv-python-headless>=4.7,<5",
        "h5py>=3.8",
        "imageio>=2.28",
        "imageio-ffmpeg>=0.4.8",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "PyYAML>=6",
        "rosbags>=0.10",
        "safetensors>=0.4",
    ],
    # ray: executor=ray for episode commands on a cluster; the tests check it against local workers
    # test: the suite, and the lint + import contracts `make test` runs first (ruff.toml, setup.cfg)
    # lerobot: export-lerobot / import-lerobot (LeRobotDataset v3.0 parquet; the `lerobot` package
    # itself pins torch<2.11 on Python 3.11, so its reader is checked from its own venv: tests/test_lerobot.py)
    # rerun: `view` and rerun=<file.rrd> on other commands (Rerun recordings of decisions)
    extras_require={"ray": ["ray>=2.9"], "lerobot": ["pyarrow>=15"], "rerun": ["rerun-sdk>=0.41"],
                    "test": ["pytest>=7", "ray>=2.9", "ruff>=0.17,<0.18", "import-linter>=2.1,<3",
                             "hypothesis>=6.100,<7", "pyarrow>=15", "rerun-sdk>=0.41"]},
    zip_safe=False,
    maintainer="robot_rewards maintainers",
    maintainer_email="maintainers@robot-rewards.invalid",
    description="Robot learning with vision-language rewards, PyBullet simulation and ROS 2 nodes.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "robot-rewards = robot_rewards.cli:main",
            # ROS 2 nodes: `ros2 run robot_rewards <name>` (colcon installs them to lib/robot_rewards).
            "sim_bridge = robot_rewards.ros.nodes.sim_bridge:main",
            "perception = robot_rewards.ros.nodes.perception:main",
            "reward_server = robot_rewards.ros.nodes.reward_server:main",
            "policy = robot_rewards.ros.nodes.policy:main",
            "executor = robot_rewards.ros.nodes.executor:main",
            "console = robot_rewards.ros.nodes.console:main",
            "calibration_capture = robot_rewards.ros.nodes.calibration_capture:main",
        ],
    },
)
