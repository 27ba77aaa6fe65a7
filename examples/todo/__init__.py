"""The Todo operator: the first operator of the talks, and kubevisor's ``make demo``.

A ``Todo`` custom resource (a title, a priority, done or not) whose status follows its spec, rendered
into a ConfigMap it owns.  Run it against the embedded server with::

    kubevisor run examples.todo.operator:operator --dev

The operator lives in :mod:`examples.todo.operator`; this package imports nothing, so that loading
it under another name (pytest does) defines nothing twice.
"""
