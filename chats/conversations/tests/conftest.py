"""Fixtures of the conversation tests."""

import pytest


@pytest.fixture
def general(general_category):
    return general_category
