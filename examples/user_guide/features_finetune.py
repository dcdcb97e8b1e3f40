"""The user guide's "Extract Features from a Model" and "Finetune a Model", on Fashion-MNIST.

Trains the guide's CNN for one epoch (examples/user_guide/cnn_fashion_mnist.py), extracts
the features below its classifier, then fine-tunes the network to a new task: the four
garment groups (tops, bottoms, footwear, bags) instead of the ten classes. The guide's
snippets refer to `feature` where they build `feature_symbol`; that one name is fixed.
Run: .venv/bin/python examples/user_guide/features_finetune.py
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

import framestream as gl
from framestream import mx

sys.path.insert(0, str(Path(__file__).parent))
from cnn_fashion_mnist import build  # noqa: E402

# T-shirt, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot
GROUP = np.array([0, 1, 0, 0, 0, 2, 0, 2, 3, 2])


def main(train_rows: int = 20000) -> dict[str, float]:
    logging.basicConfig(level=logging.INFO)
    mx.random.seed(0)
    sf = gl.datasets.fashion_mnist('train').head(train_rows)
    test = gl.datasets.fashion_mnist('test')
    sf['group'] = sf['label'].apply(lambda c: int(GROUP[c]))
    test['group'] = test['label'].apply(lambda c: int(GROUP[c]))

    def images(frame, label):
        return mx.io.SFrameImageIter(frame, data_field=['image'], label_field=label, data_name='data',
                                     label_name='sm_label' if label == 'label' else 'softmax_label',
                                     batch_size=100, scale=1 / 255.0)

    net = mx.model.FeedForward.create(build(), X=images(sf, 'label'), num_epoch=1, learning_rate=0.1,
                                      momentum=0.9, wd=0.0001)

    # net is a FeedForward model
    # This will extract features in the second last layer (the last layer is classifier)
    dataiter = images(test, 'label')
    fea = mx.model.extract_features(model=net, data=dataiter)
    print('features', fea.shape)

    # This will build a classifier symbol based on feature symbol
    feature_symbol = mx.model.get_feature_symbol(net)
    classifier = mx.sym.FullyConnected(data=feature_symbol, num_hidden=4, name='new_classifier')
    classifier = mx.sym.SoftmaxOutput(data=classifier, name='softmax')

    # classifier is the new symbol
    # net is a FeedForward model
    train, val = images(sf, 'group'), images(test, 'group')
    new_model = mx.model.finetune(symbol=classifier, model=net, num_epoch=2, learning_rate=1e-3,
                                  momentum=0.9, X=train, eval_data=val,
                                  batch_end_callback=mx.callback.Speedometer(100, 100))
    accuracy = float((new_model.predict(val).argmax(1) == test['group'].to_numpy()).mean())
    print(f"fine-tuned 4-group accuracy on the test set: {accuracy:.4f}")
    return {"features": fea.shape[1], "group_accuracy": accuracy}


if __name__ == "__main__":
    main()
