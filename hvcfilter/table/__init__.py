"""The table room: the filter table's pipeline, from a spec to the bytes a VMM installs and back.

One noun per module: the records and their codec (:mod:`.payload`),
compiling a spec into records (:mod:`.compiler`), the effective table with
its digest and diff (:mod:`.effective`), decompiling records into a spec
(:mod:`.decompiler`), the dry run in the emulated kernel (:mod:`.dryrun`),
and reading tables from spec or payload files (:mod:`.files`).

Imports: the spec room, the rules (compile lints first), the kernel's facts
and, for dry runs only, the emulator; never the CLI or the renderers.
"""
