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
    line: ``pass --train-data FILE``).

    ``makes``: what would make the missing or unfit file, a kind and its arguments
    (``("stage1",)``, ``("tflite", model_path, variant)``), for the caller's layer to name
    the command that does: ``render(flag, make)`` ends with ``; make it with: COMMAND``."""

    def __init__(self, message: str = "", parameters: tuple[str, ...] = (), makes: tuple = ()):
        self.template, self.parameters, self.makes = message, tuple(parameters), tuple(makes)
        super().__init__(self.render(str))

    def render(self, name=str, make=None) -> str:
        """The message with each parameter written as ``name(parameter)``, and the command
        ``make(*makes)`` names (where it names one) after it."""
        text = self.template
        for parameter in self.parameters:
            text = text.replace("{" + parameter + "}", name(parameter))
        command = make(*self.makes) if make and self.makes else ""
        return f"{text}; make it with: {command}" if command else text


class DataError(InputError):
    """Bad input data: a faces file, an answer file, a model file or its sidecar, an image,
    or a path to one that is missing. The message names the file (and the row)."""


class ParameterError(InputError):
    """A bad value of a named parameter of a library function. ``parameter`` is its Python
    name (``val_split``); the command line shows it as the flag that set it
    (``--val-split``). ``value``, where given, is named right after it: the message is
    then about that value (``runtime litert: model.tflite not found``). ``others``: further
    parameters the message names, as ``{name}``, and ``makes``, as InputError's."""

    def __init__(self, parameter: str, message: str, value=None, others: tuple[str, ...] = (),
                 makes: tuple = ()):
        named = "{" + parameter + "}" + ("" if value is None else f" {value}")
        super().__init__(f"{named}: {message}", (parameter, *others), makes)
        self.parameter, self.message, self.value = parameter, message, value


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during long work, with one line saying what was kept (the command line prints
    it in place of a bare 'interrupted')."""
