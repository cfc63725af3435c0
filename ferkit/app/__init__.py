"""The application layer over the library: the command line (cli: the shared plumbing;
one module per command, each with parse_args(argv) and main(argv=None)), the files and
drawings of annotation, and the web server. The library (ferkit.*) never imports it."""
