"""Soft Actor-Critic (issue 4 is building it): losses first."""
