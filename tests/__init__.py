"""Tests: real model, real index, temporary folders."""
