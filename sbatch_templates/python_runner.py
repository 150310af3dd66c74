# Gateway runner: runs a Job Template's Python script as __main__ and records its
# OUT_ values when it ends. Kept to syntax every Python 3 understands.
import os
import sys
import traceback

script = sys.argv[1]
sys.argv = [script]
sys.path.insert(0, os.environ.get("JOB_TEMPLATE_DIR", ""))
scope = {"__name__": "__main__", "__file__": script, "__builtins__": __builtins__}
status = 0
try:
    with open(script) as f:
        code = compile(f.read(), script, "exec")
    exec(code, scope)
except SystemExit as e:
    if e.code is None:
        status = 0
    elif isinstance(e.code, int):
        status = e.code
    else:
        sys.stderr.write(str(e.code) + "\n")
        status = 1
except BaseException:
    traceback.print_exc()
    status = 1
finally:
    values = dict((k, v) for k, v in os.environ.items() if k.startswith("OUT_"))
    for k, v in scope.items():
        if k.startswith("OUT_"):
            values[k] = v
    with open(os.environ["GATEWAY_OUTPUTS_FILE"], "w") as out:
        for k, v in sorted(values.items()):
            # NUL ends a record: one inside a value must not start a forged one.
            out.write("%s=%s\0" % (k, str(v).replace("\0", "")))
sys.stdout.flush()
sys.exit(status)
