from capo_ray.inspect.cli import main

main()
