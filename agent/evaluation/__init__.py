"""Benchmark evaluation: declarative task files, dataset adapters, metrics, a resumable runner."""

from agent.evaluation.tasks import Task, load_task

__all__ = ["Task", "load_task"]
