"""The errors the library raises on input a caller can fix: all ValueErrors, each message
one line saying what was expected and what was found. The command-line layer
(ferkit.app.cli.run) prints them as one line and exits with status 2; nothing here knows about
flags."""


class InputError(ValueError):
    """Input the caller can fix: a bad value, file or path. Anything else the library raises
    is a bug and keeps its traceback.

    ``parameters``: library parameters the message names, each written ``{name}`` in it
    (``pass {train_data} FILE``): the message reads with the Python name (``pass train_data
    FILE``), and ``render(flag)`` with whatever names it in the caller's layer (the command
    line: ``pass --train-data FILE``)."""

    def __init__(self, message: str = "", parameters: tuple[str, ...] = ()):
        self.template, self.parameters = message, tuple(parameters)
        super().__init__(self.render(str))

    def render(self, name=str) -> str:
        """The message with each parameter written as ``name(parameter)``."""
        text = self.template
        for parameter in self.parameters:
            text = text.replace("{" + parameter + "}", name(parameter))
        return text


class DataError(InputError):
    """Bad input data: a faces file, an answer file, a model file or its sidecar, an image,
    or a path to one that is missing. The message names the file (and the row)."""


class ParameterError(InputError):
    """A bad value of a named parameter of a library function. ``parameter`` is its Python
    name (``val_split``); the command line shows it as the flag that set it
    (``--val-split``). ``value``, where given, is named right after it: the message is
    then about that value (``runtime litert: model.tflite not found``). ``others``: further
    parameters the message names, as ``{name}`` (InputError)."""

    def __init__(self, parameter: str, message: str, value=None, others: tuple[str, ...] = ()):
        named = "{" + parameter + "}" + ("" if value is None else f" {value}")
        super().__init__(f"{named}: {message}", (parameter, *others))
        self.parameter, self.message, self.value = parameter, message, value


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during long work, with one line saying what was kept (the command line prints
    it in place of a bare 'interrupted')."""
