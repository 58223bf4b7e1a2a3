"""Typed configs of the ROS 2 nodes; each field is one ROS parameter (name, default, description).

The node shells declare every field as a parameter (`robot_rewards.ros.params`), so
`ros2 param describe` shows the description given here, the YAML files in `config/` set them,
and the plain "core" classes receive a checked dataclass instead of loose parameters.
Parameter types are the field types: bool, int, float, str and lists of one of them.
Topic and frame names default to the conventional ones of RealSense drivers, ros2_control
and Franka setups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from robot_rewards.robots.registry import DEFAULT_ARM, get_arm

# The default arm's names: its description is plain data (no pybullet), so this module, imported
# by the CLI, stays light.
_ARM = get_arm(DEFAULT_ARM)
JOINT_NAMES = _ARM.joint_names

TRAJECTORY_ACTION = "/joint_trajectory_controller/follow_joint_trajectory"
GRIPPER_ACTION = "/gripper_controller/gripper_cmd"
COLOR_TOPIC = "/camera/color/image_raw"
COLOR_INFO_TOPIC = "/camera/color/camera_info"
DEPTH_TOPIC = "/camera/depth/image_rect_raw"
DEPTH_INFO_TOPIC = "/camera/depth/camera_info"
CAMERA_POINTS_TOPIC = "/camera/depth/color/points"
JOINT_STATES_TOPIC = "/joint_states"
GOAL_TOPIC = "/goal"
CLOUD_TOPIC = "/perception/points"
# robot_rewards_interfaces/srv/ScoreCandidates, served by reward_server
SCORE_SERVICE = "/reward_server/score_candidates"
GOAL_REWARD_TOPIC = "/reward_server/goal_reward"
CANDIDATES_TOPIC = "/policy/candidates"
DECISION_CLOUD_TOPIC = "/policy/cloud"
# robot_rewards_interfaces/action/ExecutePrimitive, served by the executor
EXECUTE_ACTION = "/executor/execute"
EXECUTOR_STATUS_TOPIC = "/executor/status"
TASK_STATUS_TOPIC = "/task/status"
BASE_FRAME = _ARM.base_frame
EE_FRAME = _ARM.hand_link


def param(default, description: str):
    """A dataclass field that is a ROS parameter with a description."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"description": description})
    return field(default=default, metadata={"description": description})


@dataclass
class SimBridgeConfig:
    """`sim_bridge`: the PyBullet scene behind the same interfaces as a real arm and camera."""

    task: str = param("place_block", "sim task of the scene (place_block, push_block, stack_blocks, align_rope)")
    seed: int = param(0, "seed of the first scene; ~/reset builds the next one with seed + 1")
    gui: bool = param(False, "open the PyBullet window")
    arm: str = param(DEFAULT_ARM, "the sim arm (robots.registry); joint_names and finger_joint_names to match")
    camera: str = param("", "configured sim camera to publish ('' = the first)")
    image_scale: float = param(1.0, "render at this fraction of the camera's calibrated resolution")
    color_topic: str = param(COLOR_TOPIC, "colour image topic (rgb8)")
    color_info_topic: str = param(COLOR_INFO_TOPIC, "camera_info of the colour image")
    depth_topic: str = param(DEPTH_TOPIC, "depth image topic, registered to the colour image")
    depth_info_topic: str = param(DEPTH_INFO_TOPIC, "camera_info of the depth image")
    points_topic: str = param(CAMERA_POINTS_TOPIC, "camera-frame PointCloud2 topic ('' = do not publish)")
    joint_states_topic: str = param(JOINT_STATES_TOPIC, "sensor_msgs/JointState topic")
    goal_topic: str = param(GOAL_TOPIC, "std_msgs/String goal sentence of the task (transient local)")
    task_status_topic: str = param(TASK_STATUS_TOPIC, "task success/quality out (robot_rewards_interfaces/"
                                   "TaskStatus, transient local; '' = do not publish)")
    task_status_rate: float = param(2.0, "Hz of the task status (and after every arm or gripper motion)")
    depth_encoding: str = param("16UC1", "depth encoding: 16UC1 (millimetres) or 32FC1 (metres)")
    camera_frame: str = param("", "optical frame of the camera ('' = the one in the camera's extrinsics file)")
    base_frame: str = param(BASE_FRAME, "robot base frame (TF parent of the camera and the hand)")
    ee_frame: str = param(EE_FRAME, "hand frame published on /tf (for hand-eye calibration)")
    camera_rate: float = param(5.0, "Hz of images, camera_info and the camera-frame cloud")
    joint_state_rate: float = param(50.0, "Hz of joint_states and the hand TF")
    control_rate: float = param(100.0, "Hz of the control loop; each tick advances physics by 1/control_rate s")
    trajectory_action: str = param(TRAJECTORY_ACTION, "control_msgs/FollowJointTrajectory action served")
    gripper_action: str = param(GRIPPER_ACTION, "control_msgs/GripperCommand action served")
    joint_names: List[str] = param(list(JOINT_NAMES), "arm joint names, in the arm's joint order")
    finger_joint_names: List[str] = param(list(_ARM.gripper.finger_joints), "finger joint names")
    gripper_position_scale: float = param(0.5, "GripperCommand position = opening width * this (0.5: one finger joint)")
    start_tolerance: float = param(0.05, "rad: a trajectory whose point at t=0 is farther from the arm is rejected")
    path_tolerance: float = param(0.25, "rad of tracking error that aborts a trajectory (PATH_TOLERANCE_VIOLATED), "
                                  "every joint (<= 0: not checked)")
    path_tolerances: List[float] = param([], "per-joint path tolerances in joint_names order ([] = path_tolerance)")
    # Measured on the sim graph (place_block seeds 0-7, align_rope 0-2): motions end within
    # 0.045 rad at the trajectory's end and within 0.013 rad once stopped. The old 0.01 failed
    # settled arms (0.0101 rad) and re-grasps pressing on a block already in the bowl (0.07-0.10
    # rad on the wrist; the task status now stops the policy before those).
    goal_tolerance: float = param(0.05, "rad of final error accepted at the end of a trajectory, every joint "
                                  "(<= 0: not checked)")
    goal_tolerances: List[float] = param([], "per-joint goal tolerances in joint_names order ([] = goal_tolerance)")
    goal_time_tolerance: float = param(1.0, "s after the trajectory's end to reach the goal tolerances (if the goal "
                                       "sets none); then GOAL_TOLERANCE_VIOLATED")
    stopped_velocity_tolerance: float = param(0.05, "rad/s every arm joint must be under at the goal, so the arm "
                                              "has settled before the next motion (0 = not checked)")


@dataclass
class PerceptionNodeConfig:
    """`perception`: synchronised RGB + depth + camera_info (+ TF) -> base-frame point cloud."""

    color_topic: str = param(COLOR_TOPIC, "colour image topic (any colour/mono encoding)")
    depth_topic: str = param(DEPTH_TOPIC, "depth image topic, registered to the colour image (16UC1 mm or 32FC1 m)")
    camera_info_topic: str = param(COLOR_INFO_TOPIC, "camera_info of the (registered) images")
    output_topic: str = param(CLOUD_TOPIC, "base-frame PointCloud2 (xyz + rgb) of fixed size n_points")
    base_frame: str = param(BASE_FRAME, "frame of the output cloud")
    camera_frame: str = param("", "camera optical frame ('' = the images' header frame_id)")
    extrinsics_file: str = param("", "base-to-camera transform YAML used instead of TF ('' = look up TF)")
    perception_from_checkpoint: str = param("", "policy checkpoint whose perception settings replace the ones below")
    sync_slop: float = param(0.05, "s: colour and depth stamps further apart are not paired")
    tf_tolerance: float = param(0.2, "s: a dynamic transform further from the image stamp is stale")
    max_rate: float = param(5.0, "Hz: process at most this many frame pairs per second (0 = every pair)")
    device: str = param("auto", "perception backend: auto (torch on CUDA if there, else numpy) | numpy | torch | cuda")
    min_depth: float = param(0.05, "m: nearer depth readings are dropped")
    max_depth: float = param(2.5, "m: farther depth readings are dropped")
    workspace_lower: List[float] = param([0.1, -0.5, -0.02], "crop box lower corner (base frame, m)")
    workspace_upper: List[float] = param([0.9, 0.5, 0.5], "crop box upper corner (base frame, m)")
    table: str = param("known", "table removal: known | ransac | none")
    table_height: float = param(0.0, "m: table plane height in the base frame (table=known)")
    table_threshold: float = param(0.004, "m: points this close to the table plane are removed")
    table_up: List[float] = param([0.0, 0.0, 1.0], "base frame's up direction (table=ransac looks for a plane "
                                  "normal to it; set it for a frame that is not z-up)")
    table_max_tilt_deg: float = param(30.0, "deg the table's normal may tilt from table_up (table=ransac)")
    voxel_size: float = param(0.005, "m: voxel downsampling size (0 = off)")
    n_points: int = param(2048, "points in the output cloud")
    sampling: str = param("fps", "fps | random")
    seed: int = param(0, "seed of the sampling")


@dataclass
class RewardServerConfig:
    """`reward_server`: reward models on one device; candidate scoring and the goal reward."""

    scorers: List[str] = param([], "action scorers as name=checkpoint entries (preference-scorer checkpoints)")
    device: str = param("cpu", "torch device of the models (cpu, cuda, cuda:N, auto)")
    max_batch: int = param(8, "score requests batched into one model call")
    max_wait_ms: float = param(2.0, "ms the first request of a batch waits for company")
    state_reward: str = param("", "goal reward model as module:factory ('' = no goal reward topic)")
    state_reward_input: str = param("image", "goal reward input: image (latest colour frame) or observation (latest cloud)")
    cloud_topic: str = param(CLOUD_TOPIC, "base-frame cloud the candidates are scored in")
    color_topic: str = param(COLOR_TOPIC, "colour image for an image goal reward")
    goal_topic: str = param(GOAL_TOPIC, "std_msgs/String goal sentence (transient local)")
    goal: str = param("", "goal sentence until one arrives on goal_topic")
    score_service: str = param(SCORE_SERVICE, "robot_rewards_interfaces/srv/ScoreCandidates service served")
    goal_reward_topic: str = param(GOAL_REWARD_TOPIC, "std_msgs/Float64 goal reward of the latest frame")
    goal_reward_rate: float = param(2.0, "Hz at most of goal reward evaluations")
    # A request names the cloud the policy sampled in, and sampling takes seconds (7-13 s for the rope
    # policy on 2 loaded cores): the clouds that arrive meanwhile must not push that one out.
    cloud_keep: float = param(30.0, "s of clouds kept (by stamp, behind the newest) for requests that name "
                              "their stamp: longer than the policy takes to sample")
    cloud_cache: int = param(200, "at most this many clouds kept (a memory bound; 0 = no bound)")
    request_timeout: float = param(5.0, "s a request waits for its cloud before it is answered with an error")


@dataclass
class PolicyNodeConfig:
    """`policy`: sample N candidates, have them scored, select one, publish it and the set."""

    checkpoint: str = param("checkpoints/policy_place_block.json", "policy checkpoint (safetensors + JSON)")
    device: str = param("cpu", "torch device of the policy")
    n_candidates: int = param(8, "candidates sampled per decision")
    seed: int = param(0, "decision k samples with seed * 100 + k (selection.decision_seed: as sim episode seed)")
    episode_seeds: bool = param(True, "with a task status: decision k of an episode samples with the episode's "
                                "(scene's) seed and k, as the Python loop does on that scene; else seed and a "
                                "running decision count")
    inference_steps: int = param(0, "denoising steps (0 = the checkpoint's)")
    # On 2 cores shared with the sim bridge and perception, torch's default (a thread per core) made
    # each sampling 5-20x slower (OpenMP threads waiting for each other): 3-7 s instead of 0.1 s.
    torch_threads: int = param(1, "torch CPU threads of the policy (0 = torch's default; 1 = the sums "
                               "eval-policy computes)")
    score_candidates: bool = param(True, "ask the reward server; false: take the policy's first feasible candidate")
    weights: List[str] = param([], "family=weight entries of the utility (missing families weigh 1.0)")
    aggregator: str = param("mean", "ensemble aggregation: mean | wco | uwo")
    lam: float = param(1.0, "UWO variance weight")
    auto_decide: bool = param(True, "decide whenever idle and a fresh cloud arrives (else on ~/decide)")
    execute_chosen: bool = param(True, "send the chosen primitive to the executor's ExecutePrimitive action "
                                 "(false: a console chooses and sends it; executor_status_topic then says when "
                                 "it ended)")
    max_decisions: int = param(0, "stop after this many decisions of an episode (0 = no limit, or the task "
                               "status's max_steps with use_task_budget)")
    use_task_budget: bool = param(True, "max_decisions 0: stop after the task status's max_steps decisions (the sim "
                                  "task's step budget, as the Python loop)")
    settle_time: float = param(0.5, "s after an execution ends before a cloud counts as fresh")
    score_timeout: float = param(10.0, "s to wait for scores before the decision is dropped")
    on_score_timeout: str = param("idle", "when the reward server does not answer (or none runs): idle (no decision; "
                                  "~/status says why; asked again after score_retry s or when a reward server "
                                  "appears) | first_candidate (the policy's first feasible candidate, unscored)")
    score_retry: float = param(30.0, "s after a score timeout before the reward server is asked again")
    stale_after: float = param(10.0, "s without a cloud after which the policy does not decide on the last one")
    status_topic: str = param("~/status", "policy status out (robot_rewards_interfaces/PolicyStatus, transient "
                              "local): state and why nothing happens (which topic is silent, which node is missing)")
    status_rate: float = param(1.0, "Hz of the status (and on every change of state)")
    task_status_topic: str = param(TASK_STATUS_TOPIC, "task success/quality in (robot_rewards_interfaces/TaskStatus "
                                   "from the sim bridge; '' = none)")
    stop_at_success: bool = param(True, "stop deciding when the task status or the success reward says success "
                                  "(a new episode on the task status starts again)")
    success_reward_topic: str = param("", "std_msgs/Float64 state reward that stands in for task success on a robot, "
                                      "e.g. /reward_server/goal_reward of reward_server's state_reward ('' = none)")
    success_threshold: float = param(0.5, "success when the success reward, received after the last execution "
                                     "settled, is at least this")
    goal: str = param("", "goal sentence until one arrives on goal_topic")
    cloud_topic: str = param(CLOUD_TOPIC, "base-frame cloud input")
    joint_states_topic: str = param(JOINT_STATES_TOPIC, "joint states (feasibility is checked from here)")
    goal_topic: str = param(GOAL_TOPIC, "std_msgs/String goal sentence (transient local)")
    score_service: str = param(SCORE_SERVICE, "reward_server's robot_rewards_interfaces/srv/ScoreCandidates service")
    candidates_topic: str = param(CANDIDATES_TOPIC, "candidate sets with scores and the choice out (robot_rewards_"
                                  "interfaces/CandidateSet, transient local: a console started later gets the pending one)")
    decision_cloud_topic: str = param(DECISION_CLOUD_TOPIC, "the cloud each candidate set was sampled in "
                                      "(PointCloud2, same stamp, transient local)")
    execute_action: str = param(EXECUTE_ACTION, "the executor's robot_rewards_interfaces/action/ExecutePrimitive")
    executor_status_topic: str = param(EXECUTOR_STATUS_TOPIC, "executor status in (robot_rewards_interfaces/"
                                       "ExecutorStatus), read with execute_chosen false")
    joint_names: List[str] = param(list(JOINT_NAMES), "arm joint names in the kinematic model's order")
    arm: str = param(DEFAULT_ARM, "arm description (robots.registry: kinematics, home, gripper); joint names to match")


@dataclass
class ExecutorConfig:
    """`executor`: primitive -> IK joint trajectories -> a FollowJointTrajectory action server."""

    execute_action: str = param(EXECUTE_ACTION, "robot_rewards_interfaces/action/ExecutePrimitive action served")
    joint_states_topic: str = param(JOINT_STATES_TOPIC, "joint states; plans start from the latest one")
    status_topic: str = param(EXECUTOR_STATUS_TOPIC, "execution status out (robot_rewards_interfaces/ExecutorStatus: "
                              "every segment and the end), for consoles, bags and execute_chosen:=false policies")
    trajectory_action: str = param(TRAJECTORY_ACTION, "FollowJointTrajectory action of the arm controller")
    gripper_action: str = param(GRIPPER_ACTION, "GripperCommand action of the gripper ('' = no gripper)")
    joint_names: List[str] = param(list(JOINT_NAMES), "controller joint names, in the kinematic model's order")
    arm: str = param(DEFAULT_ARM, "arm description (robots.registry: kinematics, home, gripper); joint names to match")
    gripper_position_scale: float = param(0.5, "GripperCommand position = opening width * this")
    gripper_max_effort: float = param(_ARM.gripper.max_force, "N of the gripper command")
    server_timeout: float = param(5.0, "s to wait for the action servers before a primitive fails")
    joint_state_timeout: float = param(1.0, "s: an older joint state is stale and nothing is planned from it")
    goal_time_tolerance: float = param(1.0, "s the controller may take beyond the trajectory's end")
    # The fingers close or open right after these segments, on the object: the arm may end pressed
    # on it (0.08 rad on the wrist seen on place_block), which the Python loop accepts (it stops only
    # on a 0.25 rad tracking fault) and a 0.05 rad controller goal tolerance aborted.
    contact_goal_tolerance: float = param(0.25, "rad goal tolerance asked for (per joint, in the goal) on arm "
                                          "segments after which the gripper acts (above pick, grasp, release); 0 = the "
                                          "controller's own")
    time_scale: float = param(1.0, "trajectory durations are multiplied by this (>1 is slower)")
    max_joint_speed: float = param(1.5, "rad/s bound of planned joint speeds")
    linear_speed: float = param(0.15, "m/s of straight approach/push segments")
    free_speed: float = param(0.5, "m/s of the gripper between waypoints")
    approach_height: float = param(0.10, "m above pick/place/push points")
    workspace_low: List[float] = param([0.25, -0.35, 0.0], "workspace box lower corner; primitives outside are refused")
    workspace_high: List[float] = param([0.75, 0.35, 0.30], "workspace box upper corner")


@dataclass
class ConsoleNodeConfig:
    """`console`: the teleop/labelling console attached to the live graph."""

    candidates_topic: str = param(CANDIDATES_TOPIC, "candidate sets in (robot_rewards_interfaces/CandidateSet)")
    execute_action: str = param(EXECUTE_ACTION, "the executor's ExecutePrimitive action the chosen primitive goes to")
    chooser: str = param("", "module:factory of the chooser (''= accept the policy's choice)")
    mode: str = param("chooser", "chooser: the chooser forwards a choice per candidate set; operator: nothing is "
                      "forwarded, the operator console (robot-rewards console backend=ros) sends the goals")


@dataclass
class CalibrationCaptureConfig:
    """`calibration_capture`: images + hand poses for `robot-rewards calibrate handeye`."""

    color_topic: str = param(COLOR_TOPIC, "colour image topic")
    camera_info_topic: str = param(COLOR_INFO_TOPIC, "camera_info of the images")
    base_frame: str = param(BASE_FRAME, "robot base frame")
    ee_frame: str = param(EE_FRAME, "hand (or board-holding) frame")
    output_dir: str = param("calibration_capture", "folder of images/, robot_poses.yaml and camera_info.yaml")
    tf_tolerance: float = param(0.05, "s: hand poses further from the image stamp are stale")
    auto_capture_period: float = param(0.0, "s between automatic captures (0 = only on ~/capture)")


NODE_CONFIGS = {
    "sim_bridge": SimBridgeConfig,
    "perception": PerceptionNodeConfig,
    "reward_server": RewardServerConfig,
    "policy": PolicyNodeConfig,
    "executor": ExecutorConfig,
    "console": ConsoleNodeConfig,
    "calibration_capture": CalibrationCaptureConfig,
}
