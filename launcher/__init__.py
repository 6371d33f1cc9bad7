"""The composition root: the `mis-telephony` console script and the `make run` supervisor.

It is the one place that imports every process package (webhooks, asterisk_conf, ...) and
wires them together; those packages import only `clinic/`.
"""
