"""PyBullet tabletop: an arm from its description (`robots`), RGB-D cameras, tasks and scripted experts."""
