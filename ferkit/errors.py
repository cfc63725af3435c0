"""The errors the library raises on input a caller can fix: all ValueErrors, each message
one line saying what was expected and what was found. The command-line layer
(ferkit.cli.run) prints them as one line and exits with status 2; nothing here knows about
flags."""


class InputError(ValueError):
    """Input the caller can fix: a bad value, file or path. Anything else the library raises
    is a bug and keeps its traceback.

    ``parameters``: the library parameters the message names by their Python names (``pass
    train_data FILE``); the command line shows each as the flag that sets it (ferkit's
    cli.error_line: ``pass --train-data FILE``)."""

    def __init__(self, *args, parameters: tuple[str, ...] = ()):
        super().__init__(*args)
        self.parameters = tuple(parameters)


class DataError(InputError):
    """Bad input data: a faces file, an answer file, a model file or its sidecar, an image,
    or a path to one that is missing. The message names the file (and the row)."""


class ParameterError(InputError):
    """A bad value of a named parameter of a library function. ``parameter`` is its Python
    name (``val_split``); the command line shows it as the flag that set it
    (``--val-split``). ``value``, where given, is named right after it: the message is
    then about that value (``runtime litert: model.tflite not found``)."""

    def __init__(self, parameter: str, message: str, value=None):
        named = parameter if value is None else f"{parameter} {value}"
        super().__init__(f"{named}: {message}", parameters=(parameter,))
        self.parameter, self.message, self.value = parameter, message, value
