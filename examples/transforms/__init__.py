"""Example transforms. From the project folder (the pipe root), for instance:
`datapipe run words counts examples.transforms.wordcount.WordCount min_length=3`.
"""
