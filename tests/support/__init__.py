"""Test helpers shared by several test modules: fixtures' building blocks and analysis the library does not need."""
