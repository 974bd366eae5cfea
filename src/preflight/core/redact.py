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
# Every rule runs in time linear in the text: a node's 20,000-character string must not
# hold a run up (a scheme, a name, is matched once per run of its characters, never again
# from inside it; Python >= 3.11 possessive quantifiers stop the backtracking).
_RULES = (
    # a private key pasted anywhere (a .pub file, an error echoing a file): the whole block
    (re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----.*?(-----END [A-Z0-9 ]{0,40}"
                r"PRIVATE KEY-----|\Z)", re.DOTALL), "[redacted private key]"),
    # ... or only its END line, or a key body line (OpenSSH's b3BlbnNzaC1rZXktdjE =
    # "openssh-key-v1", PEM's DER "MII...") without its BEGIN line
    (re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----"), "[redacted private key]"),
    (re.compile(r"(?<![A-Za-z0-9+/])(?:b3BlbnNzaC1rZXktdjE|MII[A-Za-z0-9+/]{20})"
                r"[A-Za-z0-9+/]*+=*+"), "[redacted private key]"),
    # URL credentials, as pip redacts them: user:**** , or **** for a bare token
    (re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*+://)([^/\s:@]++):([^/\s@]++)@"),
     rf"\1\2:{MASK}@"),
    (re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*+://)([^/\s:@]{6,}+)@"),
     rf"\1{MASK}@"),
    # anaconda.org token channels: /t/<token>/
    (re.compile(r"(?<![A-Za-z0-9_.-])t/[A-Za-z0-9_-]{4,}+(?=/|$)"), f"t/{MASK}"),
)
# NAME=value and name: value for names that mean a secret: the name is a whole word that
# ends in one of these (HF_TOKEN, db_password, apiKeys)
_WORD = re.compile(r"[A-Za-z0-9_]+")
_SECRET_ENDINGS = tuple(k + s for k in ("password", "passwd", "passphrase", "secret", "token",
                                        "apikey", "api_key", "accesskey", "access_key",
                                        "privatekey", "private_key", "credential")
                        for s in ("", "s"))
_VALUE = re.compile(r"(\s*+[=:]\s*+)([\"']?)(?![*]{4})([^\s\"',;&]++)")
# a command-line flag: --token VALUE (an sshd AuthorizedKeysCommand, a launcher line)
_FLAG_VALUE = re.compile(r"(\s++|=)([\"']?)(?![*]{4})(?!-)([^\s\"',;&]++)")


def _names(text: str) -> str:
    """NAME=value / name: value with the value masked, in one pass over the words."""
    out, pos, done = [], 0, 0
    while True:
        word = _WORD.search(text, pos)
        if word is None:
            break
        pos = word.end()
        if not word.group().lower().endswith(_SECRET_ENDINGS):
            continue
        value = _VALUE.match(text, pos)
        if value is None and text[max(0, word.start() - 2):word.start()].endswith("-"):
            value = _FLAG_VALUE.match(text, pos)
        if value is None:
            continue
        out.append(text[done:value.start(3)])
        out.append(MASK)
        done = pos = value.end()
    out.append(text[done:])
    return "".join(out)


def redact(text: str) -> str:
    """text with every secret the rules know replaced by ****."""
    if not text or not isinstance(text, str):
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return _names(text)


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
