"""Tamper-resistant batch grading of the course's nbgrader assignments.

`python -m autograder grade <assignment> <submissions> --out <dir>` writes grades.csv,
per-student HTML feedback and a log. The assignment's own test cells (from the SOURCE
notebook, hidden tests included) run in the grader's process (`autograder.verify`); every
call they make to the learner's code is answered by a sandboxed process that ran the
learner's cells (`autograder.harness`, `autograder.sandbox`), and only data comes back
(`autograder.wire`). `autograder.specs` name the course_lib references the sandbox hides.
Each submission has its own process tree, PID namespace, tmpfs, uid, pipes and budgets, forked
from a template that never runs learner code (`autograder.isolate`), so nothing of one
student's run reaches another's; a worker that dies costs only its student
(`autograder.workers`).
"""
