"""nbgrader configuration of the course: `solutions/` is the source, `exercises/` the release.

Run nbgrader from this folder, e.g. `python -m nbgrader generate_assignment ps01 --force`.
The course root is this file's folder, so a copy of this file configures a copy of the course.
"""

from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821 (defined by nbgrader when it loads this file)

c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.course_id = "llm-fundamentals"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# Every assignment runs in seconds on a laptop CPU; a cell still running after two minutes hangs.
c.ExecutePreprocessor.timeout = 120
# Outputs are complete when the last cell replies: kill the kernel instead of waiting for it.
c.ExecutePreprocessor.shutdown_kernel = "immediate"

# Feedback shows the learner's cells and scores, not the hidden tests (nbgrader #917).
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
