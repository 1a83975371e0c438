"""The `tp` entry point runs offline for real: HF_HUB_OFFLINE is set before huggingface_hub is imported, so
the hub's own constant (read once, at import) is True inside every stage."""

from __future__ import annotations

import os
import subprocess
import sys


def _offline_constant(env: dict) -> str:
    code = ("import talking_points.cli, huggingface_hub.constants as c; "
            "print(c.HF_HUB_OFFLINE)")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip().splitlines()[-1]


def test_the_hub_constant_is_offline_inside_tp():
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    assert _offline_constant(env) == "True"


def test_a_user_can_still_turn_it_off():
    env = {**os.environ, "HF_HUB_OFFLINE": "0"}
    assert _offline_constant(env) == "False"
