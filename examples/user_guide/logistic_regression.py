"""The user guide's "Introductory Example: Logistic Regression", imports changed.

As in the guide, the "logistic regression" is a linear model with a LinearRegressionOutput
trained on a 0/1 label and scored with a custom binary accuracy. The label here is
whether a diabetes patient's disease progression is above the median (scikit-learn's
table, offline) instead of whether a house costs more than $100,000.
Run: .venv/bin/python examples/user_guide/logistic_regression.py
"""

from __future__ import annotations

import numpy as np

import framestream as gl
from framestream import mx


def main() -> float:
    mx.random.seed(0)
    # Define the network symbol, equivalent to logistic regression
    net = mx.symbol.Variable('data')
    net = mx.symbol.FullyConnected(data=net, name='fc1', num_hidden=1)
    net = mx.symbol.LinearRegressionOutput(data=net, name='lr')

    # Load data into SFrame and normalize features
    sf = gl.SFrame.read_csv(gl.datasets.diabetes_csv())
    sf['expensive'] = sf['target'] > sf['target'].to_numpy().mean()
    features = ['age', 'sex', 'bmi', 'bp', 'tc', 'ldl', 'hdl', 'tch', 'ltg', 'glu']
    for f in features:
        sf[f] = sf[f] - sf[f].mean()
        sf[f] = sf[f] / sf[f].std()

    # Prepare the input iterator from SFrame
    # `data_name` must match the first layer's name of the network.
    # `label_name` must match the last layer's name plus "_label".
    dataiter = mx.io.SFrameIter(sf, data_field=features, label_field='expensive',
                                data_name='data', label_name='lr_label',
                                batch_size=1)

    # Define the custom evaluation function for binary accuracy
    def binary_acc(label, pred):
        return int(label[0]) == int(pred[0] >= 0.5)

    model = mx.model.FeedForward.create(symbol=net, X=dataiter, num_epoch=20,
                                        learning_rate=1e-2,
                                        eval_metric=mx.metric.np(binary_acc))

    # Make prediction
    predictions = model.predict(dataiter)
    accuracy = float(((predictions.ravel() >= 0.5) == sf['expensive'].to_numpy()).mean())
    print(f"training accuracy {accuracy:.3f} (majority class {np.mean(sf['expensive'].to_numpy()):.3f})")
    return accuracy


if __name__ == "__main__":
    main()
