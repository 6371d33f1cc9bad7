"""The clinic's own voice robot, its core: settings (settings.py), campaigns of the next
day's appointments grouped per phone (campaigns.py), the dialer's state machine with retries
and escalation (dialer.py), applying a patient's answer by the robot's rules (answers.py),
the prompts' words (prompts.py) and their synthesis (tts.py). ari_app/robot places the calls."""
