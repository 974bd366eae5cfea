"""One redactor for every string that comes from a node or a config file, applied before
the string is written anywhere (reports, facts.json, the console).

    >>> redact("--extra-index-url https://ci:s3cret@pypi.example/simple")
    '--extra-index-url https://ci:****@pypi.example/simple'
    >>> redact("https://conda.anaconda.org/t/ab-12cd34/private-channel")
    'https://conda.anaconda.org/t/****/private-channel'
    >>> redact("export HF_TOKEN=hf_abcdef and password: hunter2")
    'export HF_TOKEN=**** and password: ****'
"""

from __future__ import annotations

import re

MASK = "****"
_RULES = (
    # a private key pasted anywhere (a .pub file, an error echoing a file): the whole block
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----"
                r"|\Z)", re.DOTALL), "[redacted private key]"),
    # URL credentials, as pip redacts them: user:**** , or **** for a bare token
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@]+):([^/\s@]+)@"), rf"\1\2:{MASK}@"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@]{6,})@"), rf"\1{MASK}@"),
    # anaconda.org token channels: /t/<token>/
    (re.compile(r"(?<![A-Za-z0-9_.-])t/[A-Za-z0-9_-]{4,}(?=/|$)"), f"t/{MASK}"),
    # NAME=value and name: value for names that mean a secret
    (re.compile(r"(?i)([A-Za-z0-9_]*(?:password|passwd|passphrase|secret|token|api_?key|"
                r"access_?key|private_?key|credential)s?)(\s*[=:]\s*)([\"']?)"
                r"(?![*]{4})([^\s\"',;&]+)"), rf"\1\2\3{MASK}"),
)


def redact(text: str) -> str:
    """text with every secret the rules know replaced by ****."""
    if not text or not isinstance(text, str):
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


# an environment variable's name that means a secret (upper case: sshd's lowercase
# `passwordauthentication` is a setting, not a secret)
_SECRET_NAME = re.compile(r"^[A-Z0-9_]*(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|"
                          r"ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL)[A-Z0-9_]*$")


def redact_doc(value):
    """A JSON-like document with every string value (not key) redacted, and the whole
    value of a variable whose name means a secret (a node's launch variables):

    >>> redact_doc({"NCCL_DEBUG": "INFO", "HF_TOKEN": "hf_abc", "passwordauthentication": "yes"})
    {'NCCL_DEBUG': 'INFO', 'HF_TOKEN': '****', 'passwordauthentication': 'yes'}
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: MASK if isinstance(item, str) and isinstance(key, str) and
                _SECRET_NAME.search(key) else redact_doc(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_doc(item) for item in value]
    return value
