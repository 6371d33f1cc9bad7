"""Reminder rules («СМС → Правила напоминаний») and the worker job that applies them.

Modules: `channels` (the registry of channels a rule may use), `rules` (checking and saving a
rule), `planning` (when a reminder is due, which visits a rule covers), `worker` (the job's
run: stop, plan, send), `sms_channel` and `mango_channel` (the two channels registered here;
our own voice robot registers itself from its package), `jobs` (the worker's entry).
"""

from clinic.reminders import channels, mango_channel, sms_channel

channels.register(sms_channel.CHANNEL)
channels.register(mango_channel.CHANNEL)
