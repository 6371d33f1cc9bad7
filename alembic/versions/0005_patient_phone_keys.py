"""patients: indexed last-10-digit keys of phone and phone_extra for caller-ID lookups

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 02:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _key(number: str | None) -> str:
    digits = "".join(ch for ch in (number or "") if ch.isdigit())[-10:]
    return digits if len(digits) == 10 else ""


def upgrade() -> None:
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_key', sa.String(length=10), server_default='', nullable=False))
        batch_op.add_column(sa.Column('phone_extra_key', sa.String(length=10), server_default='', nullable=False))
        batch_op.create_index(batch_op.f('ix_patients_phone_key'), ['phone_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_phone_extra_key'), ['phone_extra_key'], unique=False)

    # backfill the existing patients (the model keeps the keys from now on)
    patients = sa.table(
        'patients',
        sa.column('id', sa.Integer),
        sa.column('phone', sa.String),
        sa.column('phone_extra', sa.String),
        sa.column('phone_key', sa.String),
        sa.column('phone_extra_key', sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(patients.c.id, patients.c.phone, patients.c.phone_extra).where(
            sa.or_(patients.c.phone.is_not(None), patients.c.phone_extra.is_not(None))
        )
    ).all()
    updates = [
        {'pid': row.id, 'pk': _key(row.phone), 'pek': _key(row.phone_extra)} for row in rows
    ]
    if updates:
        bind.execute(
            patients.update()
            .where(patients.c.id == sa.bindparam('pid'))
            .values(phone_key=sa.bindparam('pk'), phone_extra_key=sa.bindparam('pek')),
            updates,
        )


def downgrade() -> None:
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_phone_extra_key'))
        batch_op.drop_index(batch_op.f('ix_patients_phone_key'))
        batch_op.drop_column('phone_extra_key')
        batch_op.drop_column('phone_key')
