"""REST API /api/v1 for the МИС."""

from flask import Blueprint

bp = Blueprint("api_v1", __name__)
