"""What several test modules share: assertions, stream readers, money checks, subprocesses.

Tests import these, never each other.
"""
