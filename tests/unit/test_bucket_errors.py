"""The replica bucket's errors, as obstore words them, become one line naming the setting and
what to check (storage/bucket.py `_explain`); the e2e test meets the same errors from a real S3
server. A timing in the message ("in 403.2ms") is not a status code (seen in CI)."""

from __future__ import annotations

import pytest

from orchestration.storage.bucket import _explain

URL = "s3://b/x"


@pytest.mark.parametrize("message,hint", [
    ("Generic S3 error: Error performing GET http://127.0.0.1:9/b/x/k in 403.2ms, after 10 "
     "retries, max_retries: 10 - HTTP error: error sending request", "the store is unreachable"),
    ("Generic S3 error: Error performing PUT http://h/b/k in 4.2ms - Server returned non-2xx "
     "status code: 403 Forbidden: <Error><Code>InvalidAccessKeyId</Code></Error>",
     "the credentials were refused"),
    ("Generic S3 error: Error performing list request: Error performing GET http://h/nosuch in "
     "2ms - Server returned non-2xx status code: 404 Not Found: <Code>NoSuchBucket</Code>",
     "the bucket does not exist"),
])
def test_each_failure_is_one_line_naming_the_setting(message: str, hint: str) -> None:
    text = str(_explain(Exception(message), URL))
    assert text.startswith(f"TALENTVAULT_REPLICA_URL={URL}: {hint}")
    assert "\n" not in text
