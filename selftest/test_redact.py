"""The one redactor: every secret shape we know is masked wherever it sits in a string,
channel names drop credentials before they are shortened, and the time is linear in the
text (a node's 20,000-character string must not hold a run up)."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from preflight.core import channels
from preflight.core.redact import redact, redact_doc

SECRET = "s3cr3tV4lue9"
SHAPES = [
    f"https://ci:{SECRET}@pypi.example/simple",
    f"https://{SECRET}abc@mirror.example/conda-forge",
    f"https://conda.anaconda.org/t/{SECRET}/private",
    f"HF_TOKEN={SECRET}",
    f"db_password: {SECRET}",
    f"apiKeys = '{SECRET}'",
    f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET}\n-----END OPENSSH PRIVATE KEY-----",
    f"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ{SECRET}",
    f"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC{SECRET}",
    f"AuthorizedKeysCommand /usr/bin/keys --token {SECRET} %u",
    f"torchrun --hf-token {SECRET}",
]
filler = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(shape=st.sampled_from(SHAPES), before=filler, after=filler)
def test_every_secret_shape_is_masked_wherever_it_sits(shape, before, after):
    assert SECRET not in redact(f"{before} {shape} {after}")


def test_a_private_key_end_line_alone_is_masked_and_a_public_key_is_kept():
    public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    assert redact("-----END RSA PRIVATE KEY-----") == "[redacted private key]"
    assert redact(public) == public


def test_a_secret_named_variable_in_a_document_is_masked_by_its_name():
    doc = {"launch_env": {"TORCH_HUB_TOKEN": SECRET, "NCCL_DEBUG": "INFO"}}
    assert redact_doc(doc) == {"launch_env": {"TORCH_HUB_TOKEN": "****", "NCCL_DEBUG": "INFO"}}


def test_channel_credentials_go_before_the_name_is_shortened():
    for url in (f"https://user:{SECRET}@host.example/nvidia/linux-64",
                f"user:{SECRET}@host.example/nvidia",
                f"https://conda.anaconda.org/t/{SECRET}/nvidia/noarch"):
        assert SECRET not in channels.normalise(url)


def _seconds(text: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        redact(text)
        best = min(best, time.perf_counter() - started)
    return best


def test_time_is_linear_in_the_text():
    """Ten times the text takes about ten times as long (a quadratic rule: a hundred);
    measured as a ratio in one run, so a slow machine does not fail it."""
    for unit in ("a", "token=", "x://a", "ab:", "t/abcd", " "):
        small, large = unit * (20_000 // len(unit)), unit * (200_000 // len(unit))
        ratio = _seconds(large) / max(_seconds(small), 1e-6)
        assert ratio < 30, (unit, ratio)
