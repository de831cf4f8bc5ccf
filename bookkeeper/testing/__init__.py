"""Shipped test kit: the exchange simulator, fault plans, fake clocks and pytest fixtures.

Only tests (ours and our users') import this package.
"""
