"""Test helpers shared by every test package: real users on the real control plane, real Git repos."""
