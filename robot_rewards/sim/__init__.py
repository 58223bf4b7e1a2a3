"""PyBullet tabletop: Franka Panda, RGB-D cameras, tasks and scripted experts."""
