"""Former home of chapter 4's sequence data, model and regression Task, kept for old imports.

What it held now lives where it belongs:

    mp.rnn.data         the adding problem, images read row by row, the default text
    mp.rnn.many_to_one  `sequence_model` and its `RegressionTask`
    mp.rnn.problems     the chapter's problems as objects (data, model, Task, report)

`mp.rnn.tasks.adding_problem(...)` and the other names below still work.
"""

from mp.rnn.data import (  # noqa: F401
    ADDING_BASELINE_MSE,
    DEFAULT_TEXT_INSTALL,
    DEFAULT_TEXT_PACKAGE,
    SEQUENTIAL_DATASETS,
    adding_dataset,
    adding_problem,
    default_text_files,
    load_text,
    sequential_images,
)
from mp.rnn.many_to_one import RegressionTask, sequence_model  # noqa: F401
