"""merge the parallel branches of 2026-12-06: SMS mailing rows (0006_sms) and
login throttling + exchange-log retention (0006_auth → 0007_retention)

Revision ID: 0008
Revises: 0006_sms, 0007_retention
Create Date: 2026-12-06 21:20:00
"""

revision = '0008'
down_revision = ('0006_sms', '0007_retention')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
