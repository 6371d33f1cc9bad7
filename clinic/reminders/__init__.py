"""Reminder rules («СМС → Правила напоминаний») and the worker job that applies them.

Modules: `channels` (the registry of channels a rule may use), `rules` (checking and saving a
rule), `planning` (when a reminder is due, which visits a rule covers), `worker` (the job's
run: stop, plan, send), `sms_channel`, `mango_channel` and `voice_channel` (our own voice
robot on Asterisk: the appointment joins the robot's campaign for its day), `jobs` (the
worker's entry).
"""

from clinic.reminders import channels, mango_channel, sms_channel, voice_channel

channels.register(sms_channel.CHANNEL)
channels.register(mango_channel.CHANNEL)
channels.register(voice_channel.CHANNEL)
