"""The shared spec helpers get pytest's assert rewriting, as their asserts were in a test module."""

import pytest

pytest.register_assert_rewrite("tests.unit.spec_helpers")
