from setuptools import find_packages, setup

setup(
    name="Flask-AuthFlow",
    version="0.1.0",
    description=(
        "JWT bearer authentication for Flask APIs: Auth0 tokens in production, "
        "locally issued tokens in development."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["flask_authflow", "flask_authflow.*"]),
    package_data={"flask_authflow": ["py.typed"]},
    python_requires=">=3.10",
    install_requires=[
        "flask>=2.3",
        # 2.12.0 rejects unknown "crit" extensions (CVE-2026-32597); 2.10.1 fixed
        # partial issuer matching (CVE-2024-53861); 2.4.0 algorithm confusion.
        "pyjwt[crypto]>=2.12.0",
        "cryptography>=44.0.1",
        "requests>=2.32.4",
        "flask-caching>=2.3.0",
    ],
    extras_require={
        "redis": ["redis>=5.0"],
        "async": ["asgiref>=3.2"],
    },
    entry_points={"pytest11": ["flask_authflow = flask_authflow.pytest_plugin"]},
    classifiers=[
        "Framework :: Flask",
        "Programming Language :: Python :: 3",
        "Topic :: Security",
        "Typing :: Typed",
    ],
)
