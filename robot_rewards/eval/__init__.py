"""Episode runners: the closed loop of the experiment (`loop`), policy evaluation (`policy`),
label collection (`collect`) and the shared-inference actor for Ray (`shared_inference`).

Each runner is a picklable job factory for `core.workers.JobPool`, so one code path serves one
process, every local core and a Ray cluster.
"""
