"""PBX admin console: the clinic's template overrides (pbx_templates, every save in
pbx_template_versions) and, per config revision, comment, files' hash, the overrides used
and Asterisk's output

Revision ID: 0010_pbx_templates
Revises: 0009_softphone
Create Date: 2026-12-07 02:00:00
"""
import sqlalchemy as sa

from alembic import op

revision = '0010_pbx_templates'
down_revision = '0009_softphone'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pbx_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_pbx_templates_author_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx_templates')),
    sa.UniqueConstraint('name', name=op.f('uq_pbx_templates_name'))
    )
    op.create_table('pbx_template_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'],
                            name=op.f('fk_pbx_template_versions_author_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx_template_versions'))
    )
    with op.batch_alter_table('pbx_template_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pbx_template_versions_name'), ['name'], unique=False)
    with op.batch_alter_table('config_revisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('comment', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('files_hash', sa.String(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('templates', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('output', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('config_revisions', schema=None) as batch_op:
        batch_op.drop_column('output')
        batch_op.drop_column('templates')
        batch_op.drop_column('files_hash')
        batch_op.drop_column('comment')
    with op.batch_alter_table('pbx_template_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pbx_template_versions_name'))
    op.drop_table('pbx_template_versions')
    op.drop_table('pbx_templates')
