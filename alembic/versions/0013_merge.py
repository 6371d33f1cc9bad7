"""merge the parallel branches of 2026-12-07: the PBX console (0010_pbx_templates), the own
voice robot (0011_voice_robot) and the reminder rules (0012_reminders)

Revision ID: 0013_merge
Revises: 0010_pbx_templates, 0011_voice_robot, 0012_reminders
Create Date: 2026-12-07 02:00:00
"""

revision = '0013_merge'
down_revision = ('0010_pbx_templates', '0011_voice_robot', '0012_reminders')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
