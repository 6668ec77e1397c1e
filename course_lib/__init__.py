"""course_lib: the reference library of *Fundamentals of Large Language Models*.

Every formula and kernel of the course exists once, here; the book, the assignments'
hidden tests and the autograder all call it.
"""

from course_lib.device import default_device

__all__ = ["default_device"]
