"""What a worker computes: one package per job type, plus pure maths.

``jobtype`` says what a job type is (the description every role reads);
``registry`` lists the installed job types; ``joint_train/`` is the training
job. ``local`` and ``psi`` are the first steps every joint job shares;
``prep``, ``metrics`` and ``trees`` are pure maths, unit-tested alone;
``reference`` is the simulation-only pooled model.
"""
