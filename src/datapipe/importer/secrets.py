"""References to secrets: how a definition names a secret parameter's value without holding it."""

from __future__ import annotations

import re

_SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}")
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_SSM_NAME = re.compile(r"/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")  # unambiguous: no backtracking blow-up
SECRET_REFERENCE_HINT = (
    "give a reference to the secret, never the secret itself: 'secretsmanager:<name>', a Secrets Manager secret ARN "
    "or 'ssm:<SecureString parameter name>'"
)


def secret_reference(value: str) -> str | None:
    """The reference a task carries (`secrets` of the task contract), or None when `value` is not a reference.

    A secret is named explicitly (`secretsmanager:` or `ssm:`, or an ARN) so that a password pasted into a values file
    is refused instead of deployed.
    """
    if _SECRET_ARN.fullmatch(value):
        return value
    if value.startswith("secretsmanager:") and _SECRET_NAME.fullmatch(value.removeprefix("secretsmanager:")):
        return value.removeprefix("secretsmanager:")
    name = value.removeprefix("ssm:")
    if value.startswith("ssm:") and len(name) <= 2048 and _SSM_NAME.fullmatch(name):
        return value
    return None
