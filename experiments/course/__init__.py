"""The course assignments' code templates, each filled in by the engine.

A student's assignment hands out a class with blanks; these modules keep the template's
names and call order and fill every blank with the engine piece that answers it, so a
reader of ``docs/course/`` sees which line of ``tinygrad_mnist`` does each step.

==================  ==========================================================================
module              template it maps
==================  ==========================================================================
``template_mlp``    the 784-64-10 sigmoid MLP project: ``reset_grad / forward / update_grad /
                    update_params``, ``W1, b1, W2, b2`` and their gradients (``TemplateMLP``)
``ift6135``         IFT6135 assignment 1's autograded ``solution.py``: class ``NN`` with
                    ``initialize_weights, relu, sigmoid, tanh, activation, softmax, forward,
                    backward, loss, update, train_loop``
==================  ==========================================================================

Both import numpy and the engine only; ``tests/test_course_adapters.py`` proves that each
trains bit for bit like the engine's own training path.
"""
