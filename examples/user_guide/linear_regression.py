"""The user guide's "Introductory Example: Linear Regression", imports changed.

The guide reads a house-price CSV from static.turi.com; here the CSV is scikit-learn's
diabetes table (442 real patients, installed offline), predicting disease progression
from ten measurements. Prints the model's RMSE next to the closed-form least-squares
RMSE. Run: .venv/bin/python examples/user_guide/linear_regression.py
"""

from __future__ import annotations

import numpy as np

import framestream as gl
from framestream import mx


def main() -> tuple[float, float]:
    mx.random.seed(0)
    # Define the network symbol, equivalent to linear regression
    net = mx.symbol.Variable('data')
    net = mx.symbol.FullyConnected(data=net, name='fc1', num_hidden=1)
    net = mx.symbol.LinearRegressionOutput(data=net, name='lr')

    # Load data into SFrame and normalize features
    sf = gl.SFrame.read_csv(gl.datasets.diabetes_csv())
    features = ['age', 'sex', 'bmi', 'bp', 'tc', 'ldl', 'hdl', 'tch', 'ltg', 'glu']
    for f in features:
        sf[f] = sf[f] - sf[f].mean()
        sf[f] = sf[f] / sf[f].std()

    # Prepare the input iterator from SFrame
    # `data_name` must match the first layer's name of the network.
    # `label_name` must match the last layer's name plus "_label".
    dataiter = mx.io.SFrameIter(sf, data_field=features, label_field='target',
                                data_name='data', label_name='lr_label',
                                batch_size=1)

    # Train the network
    model = mx.model.FeedForward.create(symbol=net, X=dataiter, num_epoch=20,
                                        learning_rate=1e-2,
                                        eval_metric='rmse')

    # Make prediction
    predictions = model.predict(dataiter)

    y = sf['target'].to_numpy().astype(np.float64)
    rmse = float(np.sqrt(np.mean((predictions.ravel() - y) ** 2)))
    A = np.column_stack([sf[f].to_numpy() for f in features] + [np.ones(len(sf))])
    best = float(np.sqrt(np.mean((A @ np.linalg.lstsq(A, y, rcond=None)[0] - y) ** 2)))
    print(f"RMSE {rmse:.3f}; closed-form least squares {best:.3f} (ratio {rmse / best:.4f})")
    return rmse, best


if __name__ == "__main__":
    main()
