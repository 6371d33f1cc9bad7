"""Result code -> exception type, including the doc's "unknown code = its class" rule."""

from __future__ import annotations

import pytest

from clinic.mango import (
    BadSignError,
    BillingError,
    CampaignError,
    CampaignStateError,
    CannotPerformError,
    DuplicateNumberError,
    InvalidKeyError,
    InvalidRequestError,
    MangoError,
    MissingParameterError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TaskLimitError,
    error_class,
    error_for,
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (3102, BadSignError),
        (3103, MissingParameterError),
        (3105, InvalidKeyError),
        (3100, InvalidRequestError),
        (3104, InvalidRequestError),
        (3400, InvalidRequestError),
        (3300, NotFoundError),
        (3310, NotFoundError),
        (5109, DuplicateNumberError),
        (5008, RateLimitError),
        (429, RateLimitError),
        (5106, CampaignStateError),
        (5111, CampaignStateError),
        (5107, TaskLimitError),
        (5108, TaskLimitError),
        (5113, TaskLimitError),
        (5101, CampaignError),
        (5003, ServerError),
        (2240, BillingError),
        (4001, CannotPerformError),
        # Unknown codes fall back to their subclass, then their class.
        (3199, InvalidRequestError),
        (3399, NotFoundError),
        (5199, CampaignError),
        (5999, ServerError),
        (2999, BillingError),
        (777, MangoError),
    ],
)
def test_error_class(code: int, expected: type[MangoError]) -> None:
    assert error_class(code) is expected


def test_duplicate_is_a_campaign_and_server_error_but_not_a_rate_limit() -> None:
    err = error_for(5109, "repeat", path="task/add", http_status=400)
    assert isinstance(err, DuplicateNumberError)
    assert isinstance(err, CampaignError)
    assert not isinstance(err, RateLimitError)
    assert (err.code, err.message, err.path, err.http_status) == (5109, "repeat", "task/add", 400)


def test_rate_limit_carries_retry_after() -> None:
    err = error_for(5008, retry_after=2.5)
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 2.5


def test_error_text_names_path_code_and_http_status() -> None:
    err = error_for(3102, "sign does not match", path="task/add", http_status=400)
    assert str(err) == "Mango task/add: 3102 sign does not match (HTTP 400)"
